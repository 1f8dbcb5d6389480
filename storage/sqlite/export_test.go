package sqlite

// SetWALLimit sets walLimit for a test and returns what puts it back.
func SetWALLimit(pages int) (restore func()) {
	before := walLimit
	walLimit = pages
	return func() { walLimit = before }
}
