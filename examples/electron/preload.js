'use strict'
// The renderer gets two functions and nothing else: no Node, no mmapvec, no ipcRenderer.
const { contextBridge, ipcRenderer } = require('electron')

contextBridge.exposeInMainWorld('counter', {
  snapshot: () => ipcRenderer.invoke('counter:snapshot'),
  onUpdate: (callback) => ipcRenderer.on('counter:update', (_event, snapshot) => callback(snapshot)),
})
