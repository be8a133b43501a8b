package avx

//go:generate sh -c "cd _gen && go run ./cmd/avx2 -pkg avx -out ../avx2_amd64.s -stubs ../avx2_stubs_amd64.go"
