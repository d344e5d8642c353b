"""Continuum Hamiltonians, lattices, Ewald sums and their NetKet operators."""
