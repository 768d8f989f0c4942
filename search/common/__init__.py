"""What the three commands share: the contract of names, errors, framework compatibility, reaching the servers."""
