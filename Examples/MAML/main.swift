print("maml: not yet written")
