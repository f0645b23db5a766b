'use strict'
// Electron main process: opens the heartbeat vec, adds a beat every second and sends the
// count to the window. Inside Electron, mmapvec runs in buffered mode (see README.md).
const { app, BrowserWindow, ipcMain } = require('electron')
const path = require('node:path')
const { openCounter } = require('./counter.js')

// A vec has one writer at a time; a second copy of the app would get ELOCKED.
if (!app.requestSingleInstanceLock()) {
  app.quit()
} else {
  let counter
  let win
  let timer

  app.on('second-instance', () => win?.show())

  app.whenReady().then(() => {
    counter = openCounter(path.join(app.getPath('userData'), 'beats.mvec'))
    ipcMain.handle('counter:snapshot', () => counter.snapshot())

    win = new BrowserWindow({
      width: 460,
      height: 300,
      webPreferences: {
        preload: path.join(__dirname, 'preload.js'),
        contextIsolation: true,
        nodeIntegration: false,
        sandbox: true,
      },
    })
    win.on('closed', () => (win = undefined))
    win.loadFile(path.join(__dirname, 'index.html'))

    timer = setInterval(() => {
      counter.beat()
      win?.webContents.send('counter:update', counter.snapshot())
    }, 1000)
  })

  app.on('window-all-closed', () => app.quit())

  // close() writes the columns back and flushes: in buffered mode, without it the beats since
  // the last autoFlush would be lost.
  app.on('will-quit', () => {
    clearInterval(timer)
    counter?.close()
  })
}
