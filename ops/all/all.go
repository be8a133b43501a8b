// Package all registers every reference kernel; import it for its side effect.
package all

import (
	_ "github.com/kilnml/kiln/ops/arith"
	_ "github.com/kilnml/kiln/ops/kiln"
	_ "github.com/kilnml/kiln/ops/kilnq"
	_ "github.com/kilnml/kiln/ops/layout"
	_ "github.com/kilnml/kiln/ops/nn"
	_ "github.com/kilnml/kiln/ops/qops"
)
