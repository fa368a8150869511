"""learnplat built-in plugin: courses."""
