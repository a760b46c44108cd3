//go:build !linux

package keyringtest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
