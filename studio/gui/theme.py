"""The app's look: Fusion plus one small stylesheet."""

STYLE = """
QMainWindow, QWidget { font-size: 10pt; }
#sidebar { background: #1f2933; color: #e4e7eb; border: none; font-size: 11pt;
           padding-top: 8px; }
#sidebar::item { padding: 10px 14px; border-radius: 6px; margin: 2px 8px; }
#sidebar::item:selected { background: #3e4c59; color: white; }
#sidebar::item:hover:!selected { background: #323f4b; }
#brand { background: #1f2933; color: white; font-size: 13pt; font-weight: 600;
         padding: 14px 16px 6px 16px; }
#pageTitle { font-size: 15pt; font-weight: 600; color: #1f2933; }
#datasetName { font-size: 13pt; font-weight: 600; }
#sectionTitle { font-weight: 600; color: #1f2933; }
#muted { color: #616e7c; }
#canary { background: #f1f6fe; border: 1px solid #c6dafc; border-radius: 4px; }
#warning { background: #fef7e0; color: #7a4a00; border: 1px solid #f9d67a; border-radius: 4px;
           padding: 4px 8px; }
#chip { background: #e8f0fe; color: #1a73e8; border-radius: 9px; padding: 2px 10px; }
#result { font-size: 11pt; padding: 4px 0; }
#answer { font-size: 11pt; }
#dropHint { color: #52606d; border: 2px dashed #9aa5b1; border-radius: 12px;
            margin: 40px; font-size: 11pt; }
QPushButton { padding: 5px 14px; }
QPushButton#primary { background: #1a73e8; color: white; border: none; border-radius: 4px;
                      padding: 6px 16px; font-weight: 600; }
QPushButton#primary:disabled { background: #a8c7fa; }
QPushButton#primary:hover { background: #1765cc; }
QProgressBar { border: 1px solid #cbd2d9; border-radius: 4px; text-align: center;
               min-height: 18px; }
QProgressBar::chunk { background: #1a73e8; border-radius: 3px; }
QProgressBar#probability { text-align: left; padding-left: 6px; }
QProgressBar#probability::chunk { background: #8ab4f8; }
QGroupBox { font-weight: 600; border: 1px solid #e4e7eb; border-radius: 6px; margin-top: 12px;
            padding-top: 6px; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; }
QTableView { gridline-color: #e4e7eb; selection-background-color: #d2e3fc;
             selection-color: #1f2933; }
QHeaderView::section { background: #f5f7fa; border: none; border-right: 1px solid #e4e7eb;
                       border-bottom: 1px solid #e4e7eb; padding: 4px 6px; font-weight: 600; }
"""
