package sqlite

import "testing"

// TestReadPool: the read connections' page caches stay within readCaches together, however many
// processors, down to a floor of 64 KiB each.
func TestReadPool(t *testing.T) {
	for _, tc := range []struct{ procs, conns, cacheKiB int }{
		{1, 2, 512},
		{2, 4, 256},
		{4, 8, 128},
		{8, 16, 64},
		{32, 64, 64},
	} {
		n := readers(tc.procs)
		if n != tc.conns || readCache(n) != tc.cacheKiB {
			t.Errorf("%d processors: %d connections of %d KiB, want %d of %d", tc.procs, n, readCache(n), tc.conns, tc.cacheKiB)
		}
		if n*readCache(n) > readCaches && readCache(n) != 64 {
			t.Errorf("%d processors: %d KiB of caches, more than %d", tc.procs, n*readCache(n), readCaches)
		}
	}
}
