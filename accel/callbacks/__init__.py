"""Lightning callbacks that measure what the chapters discuss, one module each."""
