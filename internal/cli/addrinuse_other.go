//go:build !windows

package cli

import (
	"errors"
	"syscall"
)

// addrInUse reports whether err says that the address is taken.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
