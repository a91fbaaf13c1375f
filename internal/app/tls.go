package app

import (
	"crypto/tls"
	"net"
)

func tlsConfig(hostport string) *tls.Config {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
}
