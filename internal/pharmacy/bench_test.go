package pharmacy_test

import (
	"context"
	"testing"
)

// BenchmarkAccept is one $accept round trip against the Fachdienst simulator over HTTP: the
// claim stored, the Task claimed, the Secret and the prescription stored, the signature checked
// and its result stored. Activating the prescriptions is not timed.
func BenchmarkAccept(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		task := e.ready()
		b.StartTimer()
		if _, err := e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDispense is one $dispense with closing: the dispensation stored, the Task closed at
// the Fachdienst simulator over HTTP and its signed receipt stored. Activating and accepting
// are not timed.
func BenchmarkDispense(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		task := e.ready()
		if _, err := e.rx.Accept(ctx, task.ID, task.AccessCode); err != nil {
			b.Fatal(err)
		}
		body := e.dispensation(task)
		b.StartTimer()
		if _, err := e.rx.Dispense(ctx, task.ID, body, true); err != nil {
			b.Fatal(err)
		}
	}
}
