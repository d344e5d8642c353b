"""qernel: foundation neural wavefunctions for families of continuum many-electron Hamiltonians."""
