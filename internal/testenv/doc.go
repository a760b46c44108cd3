// Package testenv decides what a test does when the machine lacks a part
// it needs (FUSE, a keyring, Xvfb, nginx, root, a program): on CI
// (CI=true), where every part is installed, the test fails, so a missing
// part can never pass as a green run; elsewhere it is skipped and says
// what to install.
//
// Only tests import this package.
package testenv
