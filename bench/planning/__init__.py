"""Planning: what to run. Profiles and the defaults table, typed settings, the grid of cells with
their content keys, matched budgets, and the order cells start in. Imports no other bench layer."""
