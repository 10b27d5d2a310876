// Package testenv is the test harness on the real services: a fresh,
// migrated Postgres schema per call, a unique Redis key prefix per call, and
// private redis-server processes for fault tests. A service that cannot be
// reached fails the test, except under -short, where it skips.
//
// The services are found through SESSIONHUB_TEST_DATABASE_URL (default
// postgres://root@127.0.0.1:5432/test) and SESSIONHUB_TEST_REDIS_URL
// (default redis://127.0.0.1:6379/0); scripts/test starts them when absent.
package testenv
