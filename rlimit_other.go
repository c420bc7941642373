//go:build !unix

package warmpool

// openFileLimit reports that the open-file limit is unknown here.
func openFileLimit() (int64, bool) { return 0, false }
