// Package agent is the daemon: it owns the lifecycle, the share state
// machine and the policy, and wires the parts together (receiver,
// discovery, tokens, fuse, control). Nothing it wires imports it; they meet
// here through small interfaces declared where they are used.
package agent
