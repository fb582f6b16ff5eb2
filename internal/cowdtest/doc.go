// Package cowdtest holds test helpers for cowd: a small pipelining NBD
// client written independently of package cowd/nbd ([Client]: it checks
// the server and must not share its mistakes), a trivially correct
// reference device for model-based tests ([Model]), and [RequireTool],
// which skips a test when an external client (qemu-img, qemu-io, nbdinfo,
// nbdcopy, fio) is missing, or fails it under CI=true.
//
// Its own tests are the cowd end-to-end tests: real clients against cowd
// served in-process (interop_test.go), random operation sequences over NBD
// against the model (model_test.go), and the crash-consistency test, which
// builds cmd/cowd and cmd/cowd-img, kills cowd with SIGKILL at random
// moments and checks that every acknowledged flush survived
// (crash_test.go).
//
// It imports neither cowd nor cowd/nbd, so those packages' tests may use it.
package cowdtest
