package e2e

import "syscall"

var interruptSignal = syscall.SIGTERM
