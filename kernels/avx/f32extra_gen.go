package avx

//go:generate sh -c "cd _gen && go run ./cmd/f32x -pkg avx -out ../f32extra_amd64.s -stubs ../f32extra_stubs_amd64.go"
