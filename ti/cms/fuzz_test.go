package cms_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/redclone/red/internal/fixture"
	"github.com/redclone/red/ti/cms"
)

// FuzzVerify feeds arbitrary bytes to the parser: it must fail cleanly, never panic.
func FuzzVerify(f *testing.F) {
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add(fixture.Read(f, fixture.Glob(f, filepath.Join(qesSamples, "*.p7"))[0]))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = cms.Inspect(data)
		_, _, _ = cms.Verify(data, nil, nil, time.Time{})
		_, _, _ = cms.Verify(data, []byte("content"), nil, time.Time{})
	})
}
