// Package config defines the agent's configuration: one table of keys that
// is at once the TOML file ($XDG_CONFIG_HOME/ocm-agent/config.toml), the
// flags of "ocm-agent serve", and the text of the ocm-agent.toml(5) man
// page, so the three cannot drift apart. Defaults come from the XDG base
// directories and the environment.
package config
