package sessions

import "testing"

// TestB64Table: IsBase64URL's lookup table accepts exactly base64url's
// alphabet.
func TestB64Table(t *testing.T) {
	t.Parallel()
	for c := range 256 {
		want := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if got := IsBase64URL(string([]byte{byte(c)})); got != want {
			t.Fatalf("byte %#x: got %v, want %v", c, got, want)
		}
	}
}
