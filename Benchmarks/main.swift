print("bench: not yet wired")
