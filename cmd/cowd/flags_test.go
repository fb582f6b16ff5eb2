package main

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    *options
		wantErr bool
	}{
		{name: "defaults", args: []string{"vm1", "/x/vm1.dscow"},
			want: &options{plugin: "dscow", name: "vm1", cowFile: "/x/vm1.dscow", listen: "unix:/run/cowd/vm1.sock"}},
		{name: "seed flags", args: []string{"-p", "dscow", "-b", "32", "-I", "-n", "-s", "-d", "-v", "-i", "/run/p", "vm", "c"},
			want: &options{plugin: "dscow", blockKB: 32, init: true, foreground: true, sync: true, debug: true,
				verbose: true, pidFile: "/run/p", name: "vm", cowFile: "c", listen: "unix:/run/cowd/vm.sock"}},
		{name: "tcp listen", args: []string{"--listen", "tcp:127.0.0.1:10809", "-r", "vm", "c"},
			want: &options{plugin: "dscow", resume: true, name: "vm", cowFile: "c", listen: "tcp:127.0.0.1:10809"}},
		{name: "version", args: []string{"-V"}, want: &options{plugin: "dscow", version: true}},
		{name: "-I with -r", args: []string{"-I", "-r", "vm", "c"}, wantErr: true},
		{name: "qcow plugin", args: []string{"-p", "qcow", "vm", "c"}, wantErr: true},
		{name: "missing COWFILE", args: []string{"vm"}, wantErr: true},
		{name: "name with a slash", args: []string{"../vm", "c"}, wantErr: true},
		{name: "negative block size", args: []string{"-b", "-4", "vm", "c"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}
