package control

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func u32(v uint32) *uint32 { return &v }

func TestDecodeRequest(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		op      string
		args    any
		wantErr string
	}{
		{"status", `{"v":1,"id":1,"op":"status"}`, OpStatus, nil, ""},
		{"freeze domain", `{"v":1,"id":2,"op":"freeze","args":{"domain":"web1"}}`, OpFreeze, &DomainArgs{Domain: "web1"}, ""},
		{"freeze all", `{"v":1,"id":2,"op":"freeze","args":{"all":true}}`, OpFreeze, &DomainArgs{All: true}, ""},
		{"set weight", `{"v":1,"id":3,"op":"set","args":{"domain":"3","weight":20}}`, OpSet, &SetArgs{DomainArgs: DomainArgs{Domain: "3"}, Weight: u32(20)}, ""},
		{"list all long", `{"v":1,"id":4,"op":"list","args":{"long":true}}`, OpList, &ListArgs{Long: true}, ""},
		{"reserve", `{"v":1,"id":5,"op":"reserve","args":{"mib":2048,"timeout_ms":30000}}`, OpReserve, &ReserveArgs{MiB: 2048, TimeoutMs: 30000}, ""},
		{"bad version", `{"v":2,"id":1,"op":"status"}`, "", nil, "protocol version 2"},
		{"unknown op", `{"v":1,"id":1,"op":"reboot"}`, "", nil, "unknown op"},
		{"unknown field", `{"v":1,"id":1,"op":"status","extra":1}`, "", nil, "unknown field"},
		{"unknown arg", `{"v":1,"id":1,"op":"flush","args":{"kib":1,"pages":2}}`, "", nil, "unknown field"},
		{"missing args", `{"v":1,"id":1,"op":"freeze"}`, "", nil, "needs arguments"},
		{"args on status", `{"v":1,"id":1,"op":"status","args":{"x":1}}`, "", nil, "takes no arguments"},
		{"freeze neither", `{"v":1,"id":1,"op":"freeze","args":{}}`, "", nil, "exactly one"},
		{"set nothing", `{"v":1,"id":1,"op":"set","args":{"all":true}}`, "", nil, "nothing to set"},
		{"shared persistent", `{"v":1,"id":1,"op":"pool-create","args":{"domain":"a","persistent":true,"shared":true,"uuid":"1"}}`, "", nil, "both shared and persistent"},
		{"flush too big", `{"v":1,"id":1,"op":"flush","args":{"kib":99999999999}}`, "", nil, "too large"},
		{"negative weight", `{"v":1,"id":1,"op":"set","args":{"all":true,"weight":-1}}`, "", nil, "cannot unmarshal"},
		{"not json", `hello`, "", nil, "invalid character"},
		{"trailing", `{"v":1,"id":1,"op":"status"} {}`, "", nil, "trailing data"},
		{"cowd format", `{"v":1,"id":1,"op":"cowd-attach","args":{"domain":"a","disk":"xvda","cow_file":"/x","format":"vmdk"}}`, "", nil, "want dscow or qcow2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, args, err := DecodeRequest([]byte(tt.line))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrBadRequest) || !contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrBadRequest mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Op != tt.op {
				t.Errorf("op %q", req.Op)
			}
			if diff := cmp.Diff(tt.args, args); diff != "" {
				t.Errorf("args (-want +got)\n%s", diff)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// FuzzDecodeRequest: no input panics, and every accepted request re-encodes
// into a line that decodes to the same op and arguments.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"id":1,"op":"status"}`,
		`{"v":1,"id":2,"op":"set","args":{"domain":"web1","weight":5,"compress":true}}`,
		`{"v":1,"id":3,"op":"flush","args":{"kib":1024}}`,
		`{"v":1,"id":4,"op":"shared-auth","args":{"all":true,"uuid":"0-0","authorise":true}}`,
		`{"v":1,"id":5,"op":"cowd-attach","args":{"domain":"a","disk":"b","cow_file":"c","format":"dscow"}}`,
		`{"v":1`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, args, err := DecodeRequest(line)
		if err != nil {
			return
		}
		again, err := EncodeRequest(req.ID, req.Op, args)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		req2, args2, err := DecodeRequest(again[:len(again)-1])
		if err != nil {
			t.Fatalf("re-decode %q: %v", again, err)
		}
		if req2.Op != req.Op || req2.ID != req.ID {
			t.Fatalf("op/id changed: %v vs %v", req, req2)
		}
		if diff := cmp.Diff(args, args2); diff != "" {
			t.Fatalf("args changed (-first +second)\n%s", diff)
		}
	})
}
