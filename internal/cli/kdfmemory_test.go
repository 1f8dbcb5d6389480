package cli_test

import (
	"context"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/redclone/red/internal/cli"
	"github.com/redclone/red/internal/vault"
)

// Unlocking at the production key derivation (vault.DefaultKDF: 64 MiB of Argon2id memory) leaves
// no trace in the heap goal once red serves: a collection during the derivation would otherwise
// make the next goal GOGC (400 %) of those 64 MiB, and the first seconds of a load would grow the
// process to about 350 MB before memory is collected again (issue #12).
func TestUnlockLeavesNoHeapGoal(t *testing.T) {
	in := newInstance(t, "")
	// init without the tests' cheap KDF: the credential carries the production parameters
	var out strings.Builder
	if err := cli.Run(context.Background(), []string{"--data-dir", in.dir, "init", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw")},
		cli.IO{In: strings.NewReader(""), Out: &out, Err: &out}); err != nil {
		t.Fatalf("red init: %v\n%s", err, out.String())
	}
	in.serve("serve", "--tenant", "praxis", "--user", "anna", "--password-file", in.passwordFile("pw"))

	sample := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(sample)
	kdf := uint64(vault.DefaultKDF.MemoryKiB) << 10
	if goal := sample[0].Value.Uint64(); goal >= 4*kdf {
		t.Errorf("heap goal %d MiB once red serves: it still counts the key derivation's %d MiB", goal>>20, kdf>>20)
	} else {
		t.Logf("heap goal %d MiB once red serves", goal>>20)
	}
}
