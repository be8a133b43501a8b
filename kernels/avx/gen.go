package avx

//go:generate sh -c "cd _gen && go run . -pkg avx -out ../sgemm_amd64.s -stubs ../sgemm_stubs_amd64.go"
