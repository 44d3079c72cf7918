// Loaded by mocha before any test: the test-only entry point (lib/testing.ts) requires this
// opt-in, and child processes started by tests inherit it.
process.env.QUANTUM_TUNNEL_TESTING = '1';
