package httpsig

import (
	"context"
	"testing"
)

func BenchmarkSignVerifyRFC9421(b *testing.B) {
	for _, k := range testKeys(b) {
		b.Run(string(k.Alg), func(b *testing.B) {
			r := resolverFor(k)
			for b.Loop() {
				req := signedRequest(b, k, testBody)
				if _, err := Verify(context.Background(), req, testBody, r, opts()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSignVerifyCavage(b *testing.B) {
	k := cavageKey(b)
	r := resolverFor(k)
	for b.Loop() {
		req := cavageRequest(b, k, testBody, testNow)
		if _, err := Verify(context.Background(), req, testBody, r, opts()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseSignatureInput(b *testing.B) {
	in := `sig1=("@method" "@target-uri" "content-digest" "content-length");created=1785060500;keyid="sender.example.org#key1";alg="ed25519";tag="ocm"`
	sig := `sig1=:Epax4XFqvbrrDzQUAaNl+uECasEKbArgz8AlEkXspvYX2fSkQFlCkaXImZnYU898C2t0IdmbFhjR8bkN0hZgCg==:`
	for b.Loop() {
		if _, err := findOCMSignature(in, sig); err != nil {
			b.Fatal(err)
		}
	}
}
