"""Block execution: the serial reference and the parallel executor with its helpers."""
