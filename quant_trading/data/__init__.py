"""Live market data: the tracker and the live bar builder it feeds."""
