package cli

// NewLogBatch is red serve's log writer, for tests.
var NewLogBatch = newLogBatch
