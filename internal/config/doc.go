// Package config is the daemon's configuration: defaults, then environment
// variables, then command-line flags, validated in one place. Every setting
// has a flag and an environment twin; an invalid value is an error that names
// the setting, the value and what is allowed.
package config
