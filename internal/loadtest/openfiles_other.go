//go:build !unix

package loadtest

// openFilesLimit is unknown here.
func openFilesLimit() int { return 0 }
