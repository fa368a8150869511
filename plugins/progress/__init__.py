"""learnplat built-in plugin: progress."""
