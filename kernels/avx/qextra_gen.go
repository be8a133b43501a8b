package avx

//go:generate sh -c "cd _gen && go run ./cmd/int8x -pkg avx -out ../qextra_amd64.s -stubs ../qextra_stubs_amd64.go"
