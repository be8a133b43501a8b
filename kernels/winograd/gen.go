package winograd

//go:generate sh -c "cd ../avx/_gen && go run ./cmd/winograd -pkg winograd -out ../../winograd/transforms_amd64.s -stubs ../../winograd/transforms_stubs_amd64.go"
