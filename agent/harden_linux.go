package agent

import (
	"fmt"
	"syscall"
)

// noDumps marks the process not dumpable (prctl PR_SET_DUMPABLE 0).
func noDumps() error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); e != 0 {
		return fmt.Errorf("prctl(PR_SET_DUMPABLE): %w", e)
	}
	return nil
}
