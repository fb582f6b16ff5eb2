package main

import (
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlagsQcow2(t *testing.T) {
	got, err := parseFlags([]string{"-p", "qcow2", "-s", "vm", "/x/vm.qcow2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := &options{plugin: "qcow2", sync: true, name: "vm", cowFile: "/x/vm.qcow2", listen: "unix:/run/cowd/vm.sock"}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(options{})); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
}
