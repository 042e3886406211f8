"""The method in plain NumPy, with no Caffe and no files: the optimization loop (``algorithm``), what it
maximizes (``objectives``), start codes (``codes``), bound statistics (``bounds``) and the pixel
convention (``pixels``). ``algorithm`` runs on any generator and target that follow its two Protocols."""
