package xenctl_test

import (
	"bytes"
	"fmt"

	"github.com/xentmem/xentmem/xenctl"
)

// ExampleParseList reads a short all-clients listing as Xen 4.12 leaves it
// in the buffer: lines, then a NUL, then whatever the buffer held before.
func ExampleParseList() {
	buf := []byte("G=Tt:7,Te:5,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0\n" +
		"C=CI:0,ww:7,co:0,fr:1,Tc:0,Ge:0,Pp:0,Gp:0\n" +
		"P=CI:0,PI:0,PT:EP,U0:0,U1:0\n" +
		"P=CI:0,PI:1,PT:PP,U0:0,U1:0\n" +
		"T\n\x00\x00\x00")
	l, err := xenctl.ParseList(buf)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("tmem ops:", l.Global.TotalOps)
	dom0 := l.Client(0)
	fmt.Println("dom0 weight:", dom0.Weight, "frozen:", dom0.Frozen)
	for _, p := range dom0.Pools {
		fmt.Printf("pool %d: %s persistent=%t shared=%t\n", p.ID, p.Type, p.Persistent(), p.Shared())
	}
	text, _, _ := bytes.Cut(buf, []byte{0})
	fmt.Println("formats back:", bytes.Equal(l.Format(), text))
	// Output:
	// tmem ops: 7
	// dom0 weight: 7 frozen: true
	// pool 0: EP persistent=false shared=false
	// pool 1: PP persistent=true shared=false
	// formats back: true
}

// ExampleParseList_error shows the error for a malformed line.
func ExampleParseList_error() {
	_, err := xenctl.ParseList([]byte("G=Tt:7\nC=CI:0,ww:x\n"))
	fmt.Println(err)
	// Output:
	// malformed tmem list: line 2: bad value: "ww:x"
}
