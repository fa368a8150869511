"""The quizzes plugin: quizzes on course modules, attempts, grading and results."""
