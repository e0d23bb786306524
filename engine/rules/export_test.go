package rules

// Usage runs p like Eval and reports what its run was charged: the steps of
// work and the bytes built. The benchmarks use it to calibrate the weights
// of builtins.go.
func (p *Program) Usage(env Env) (out any, steps, bytes int, err error) {
	out, b, err := p.run(env)
	if b != nil {
		steps, bytes = b.steps, b.bytes
	}
	return out, steps, bytes, err
}
