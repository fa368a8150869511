"""learnplat built-in plugin: enrollment."""
