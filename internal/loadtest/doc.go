// Package loadtest is the engine of `sessionhub bench`: a load generator
// that drives a running cluster from outside, as real clients do. It opens
// sockets over loopback source addresses 127.0.0.x and, past one process's
// file limit, over child processes of the same binary (`sessionhub bench
// worker`); it reads the servers' cost from their Prometheus endpoints.
//
// Creating users and sessions is left to a Provisioner that cmd builds on
// the auth and sessions packages (the same path as the CLI), so this package
// imports no other project package.
package loadtest
