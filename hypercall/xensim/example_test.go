package xensim_test

import (
	"fmt"

	"github.com/xentmem/xentmem/hypercall/xensim"
	"github.com/xentmem/xentmem/xenctl"
)

// A guest puts a page into a cleancache pool through xenctl's guest API,
// and dom0 lists tmem, as it would on a real Xen 4.12.
func Example() {
	sim, err := xensim.New(&xensim.Config{Version: "4.12.4"})
	if err != nil {
		panic(err)
	}
	guest, _ := sim.CreateDomain(xensim.DomainConfig{MemoryKiB: 64 << 10})
	gc, _ := xenctl.New(sim.Guest(guest), nil)
	defer gc.Close()
	pool, _ := gc.NewPool(xenctl.PoolSpec{}) // private, ephemeral
	sim.GuestMemory(guest).Write(7, []byte("hello, tmem"))
	if err := gc.PutPage(pool, [3]uint64{42}, 0, 7); err != nil {
		panic(err)
	}

	dom0, _ := xenctl.New(sim, nil)
	defer dom0.Close()
	text, _ := dom0.List(xenctl.AllClients, false)
	fmt.Print(string(text))
	hit, _ := gc.GetPage(pool, [3]uint64{42}, 0, 8)
	page := make([]byte, 11)
	sim.GuestMemory(guest).Read(8, page)
	fmt.Printf("get: %v %q\n", hit, page)
	// Output:
	// G=Tt:2,Te:0,Cf:0,Af:0,Pf:0,Ta:0,Lm:0,Et:0,Ea:0,Rt:0,Ra:0,Rx:0,Fp:0
	// C=CI:1,ww:0,co:0,fr:0,Tc:0,Ge:0,Pp:0,Gp:0
	// P=CI:1,PI:0,PT:EP,U0:0,U1:0
	// T
	// get: true "hello, tmem"
}
