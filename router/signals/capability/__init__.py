"""What kind of task a prompt is and how hard it is for a cheaper model: the classifier, its surface
features and the meaning vector."""
