"""Parts inventory: the catalogue, stock locations, and stock as a ledger of movements."""
